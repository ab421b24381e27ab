/**
 * Reproducers of iommufd programs compile with -Wall -Wextra -Werror in both forms: the compact
 * one (one task: each object name a uint32_t variable) and the general one (fork: each task's
 * objs[] table), with only the runtime sections they use. The programs run on a guest in
 * test/integration/iommufd.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { reproForProgram } from '../../harness/repro/csource.js';
import { IOMMUFD_PROFILE, LIFECYCLE, MEMORY } from './iommufd-programs.js';
import { scratch } from './repro-csource-helpers.js';

const s = scratch('svadiff-repro-iommufd-');
afterAll(() => s.cleanup());

describe('iommufd reproducers', () => {
  it('compact: object names are variables; general: a table per task, copied by fork', { timeout: 60_000 }, async () => {
    const compact = reproForProgram(LIFECYCLE, IOMMUFD_PROFILE);
    const general = reproForProgram(MEMORY, IOMMUFD_PROFILE);
    expect(compact).toContain('static uint32_t obj_ioas = 0');
    expect(compact).toContain('iommufd_ioas_alloc(r, fd_i, &obj_ioas);');
    expect(compact).not.toContain('objs[');
    expect(general).toContain('enum { OBJ_a, OBJ_dv, OBJ_h, OBJ_h2, OBJ_hn, N_OBJS };');
    expect(general).toContain('static uint32_t objs[N_OBJS];');
    await Promise.all([s.compile(compact), s.compile(general)]);
  });
});
