# The devices scripts/qemu builds QEMU with (configs/devices/x86_64-softmmu/seed.mak in
# its tree): the microvm machine and the virtio-mmio devices the shoot pool's VMs use
# (qemu-command.ts), nothing else. Kconfig adds what these select (the serial port, the
# I/O APIC, the RTC, ACPI's hardware-reduced tables).
CONFIG_MICROVM=y
CONFIG_VIRTIO_MMIO=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_9P=y
