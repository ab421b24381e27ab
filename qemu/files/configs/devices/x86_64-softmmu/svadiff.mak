# The devices of svadiff's SVA machine (harness/vm/machine.ts), nothing else:
# configure --without-default-devices --with-devices-x86_64=svadiff
CONFIG_Q35=y
CONFIG_VTD=y
CONFIG_PCIE_PORT=y
CONFIG_SERIAL_ISA=y
CONFIG_SVADIFF_SVA=y
# hw/acpi/cxl.c (selected with the PC machines) links against hw/cxl, which needs these
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
