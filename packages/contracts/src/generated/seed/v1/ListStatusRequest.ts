// Original file: proto/seed/v1/reconciler.proto


export interface ListStatusRequest {
}

export interface ListStatusRequest__Output {
}
