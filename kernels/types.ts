/**
 * What the rest of svadiff needs to know about a fetched kernel. Produced by kernels/ (fetch),
 * consumed by the initramfs builder, the VM launcher, the model's profile selection and reports.
 */
export type Arch = 'x86_64' | 'arm64';

export interface KernelArtifacts {
  /** the spec the user gave, e.g. "debian:6.12" */
  spec: string;
  /** canonical spec of exactly this build, e.g. "debian:6.12.117" */
  exactSpec: string;
  /** upstream version, e.g. "6.12.117" */
  version: string;
  /** Debian package version, e.g. "6.12.117-1~deb12u1" */
  debianVersion: string;
  /** kernel release (uname -r), e.g. "6.12.117+deb12-amd64" */
  release: string;
  arch: Arch;
  /** absolute paths inside the cache */
  image: string;
  config: string;
  systemMap: string;
  /** sha256 of the config file (reports quote a prefix) */
  configHash: string;
  /** compiler the kernel was built with (CONFIG_CC_VERSION_TEXT) */
  compiler: string;
  /** out-of-tree modules built for this kernel, loaded by the guest in this order */
  modules: {
    /** uacce.ko built from linux-source */
    uacce: string;
    /** the test device module, guest/module */
    svadiffTest: string;
  };
  /** the linux-source package version uacce.ko was built from */
  uacceSourceVersion: string;
  /** further modules from the kernel package the guest must load before ours (absolute paths, in order) */
  extraModules: string[];
  /** the cache directory of this kernel */
  dir: string;
}
