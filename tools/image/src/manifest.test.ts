import { describe, expect, it } from 'vitest';
import { allModules } from '@leakless/crosscheck';
import { assemble } from '@leakless/policy';
import { defaultPolicy } from '@leakless/policy/testing';
import { IMAGE_MASKED_UNITS, planImage } from './iso-plan.js';
import { planRecord } from './manifest.js';

describe('the manifest’s record of the plan', () => {
  it('names the units the build masks, as well as those it enables', () => {
    const plan = planImage(assemble(defaultPolicy(), allModules));
    const r = planRecord(plan);
    expect(plan.maskedUnits.length).toBeGreaterThan(0);
    expect(r.maskedUnits).toEqual(plan.maskedUnits);
    expect(r.maskedUnits).toContain('nftables.service');
    expect(r.units).toEqual(plan.units);
    expect(r.units.filter((u) => r.maskedUnits.includes(u))).toEqual([]);
  });

  it('comes from the modules’ emissions: a module set that masks nothing records only the image’s own masks', () => {
    const r = planRecord(
      planImage(
        assemble(
          defaultPolicy(),
          allModules.filter((m) => m.name !== 'firewall'),
        ),
      ),
    );
    expect(r.maskedUnits).toEqual([...IMAGE_MASKED_UNITS]);
  });
});
