/** Limits that keep programs within what the agent's fixed tables hold. */
export const LIMITS = {
  maxOps: 4096,
  maxTasks: 8,
  maxFds: 1024,
  maxMaps: 1024,
  maxObjs: 1024,
  maxPages: 64,
  maxRegionPages: 16,
  maxDevices: 8,
  maxQueueLimit: 64,
  maxPollMs: 2000,
  maxString: 64,
} as const;

/** Name of the first task, which exists when a program starts. */
export const ROOT_TASK = 't0';
