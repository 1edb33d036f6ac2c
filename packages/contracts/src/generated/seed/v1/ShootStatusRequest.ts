// Original file: proto/seed/v1/shoot.proto


export interface ShootStatusRequest {
}

export interface ShootStatusRequest__Output {
}
