/**
 * What the rest of svadiff needs to know about a fetched kernel. Produced by kernels/ (fetch),
 * consumed by the initramfs builder, the VM launcher, the model's profile selection and reports.
 */
export type Arch = 'x86_64' | 'arm64';

/** Where the guest's uacce comes from; quoted in findings and reports. */
export interface UacceOrigin {
  /** one line, e.g. "uacce.c: Debian 6.12.118 + fix.patch, sha256 1a2b3c4d5e6f7a8b" */
  text: string;
  /** sha256 over the uacce sources (uacce.c and the uacce headers) the module was built from */
  sha256: string;
  /** built from the user's --uacce-src rather than the kernel's own source */
  custom: boolean;
  /** uacce is built into the kernel (no uacce.ko to load; modules.uacce is empty) */
  builtin: boolean;
  /** the --uacce-src argument, as an absolute path (custom only) */
  src?: string;
}

export interface KernelArtifacts {
  /** the spec the user gave, e.g. "debian:6.12" */
  spec: string;
  /** canonical spec of exactly this build, e.g. "debian:6.12.117" or "src:debian:6.12.118+kasan" */
  exactSpec: string;
  /** upstream version, e.g. "6.12.117" */
  version: string;
  /** Debian package version, e.g. "6.12.117-1~deb12u1" ("" for a kernel built from a git tree) */
  debianVersion: string;
  /** kernel release (uname -r), e.g. "6.12.117+deb12-amd64" */
  release: string;
  arch: Arch;
  /** whose patches the kernel carries, for the model's profile (default debian) */
  distro?: 'debian' | 'upstream';
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
    /** uacce.ko (built from linux-source, the kernel's build or --uacce-src); "" when uacce is built in */
    uacce: string;
    /** the test module, guest/module */
    svadiffTest: string;
  };
  /** the linux-source package version uacce.ko was built from (or the source tree of a self-built kernel) */
  uacceSourceVersion: string;
  /** where uacce comes from (absent only in hand-made artifacts of tests) */
  uacce?: UacceOrigin;
  /** further modules from the kernel package the guest must load before ours (absolute paths, in order) */
  extraModules: string[];
  /** modules from the kernel package /init loads before the agent starts, for its channel (absolute paths, in order; profiles.ts CHANNEL_MODULES) */
  channelModules?: string[];
  /** the cache directory of this kernel */
  dir: string;
  /** kernels built from source: the tree and configuration */
  built?: {
    source: string;
    commit?: string;
    subject?: string;
    fragments: string[];
    buildLog: string;
  };
}
