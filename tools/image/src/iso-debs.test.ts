import { describe, expect, it } from 'vitest';
import { allModules } from '@leakless/crosscheck';
import { assemble, readDefaultPolicy } from '@leakless/policy';
import { IMAGE_MASKED_UNITS, planImage } from './iso-plan.js';
import { KERNEL_ARGS, topRecipe } from './iso-recipes.js';
import { LAYER_DEBS_SH, packagesLayer } from './iso-debs.js';

describe('the module layer from the packages', async () => {
  const r = await readDefaultPolicy();
  if (!r.ok) throw new Error('default policy invalid');
  const plan = planImage(assemble(r.policy, allModules));
  const top = topRecipe({ plan, compression: 'zstd', includesTar: Buffer.from('t'), imageTar: Buffer.from('i'), kernelArgs: KERNEL_ARGS, menuTitle: 'm' });
  const repo = new Map([['debs/Packages', { content: Buffer.from('Package: leakless\n'), mode: 0o644 }]]);

  it('installs the packages where the tarball was unpacked and its units linked; the rest of the recipe is unchanged', () => {
    const layer = packagesLayer(top, { units: plan.units, masked: IMAGE_MASKED_UNITS }, repo);
    const names = (x: typeof top) => x.recipe.actions.map((a) => a.description);
    expect(names(layer)).toEqual(
      names(top)
        .filter((d) => d !== 'includes')
        .map((d) => (d === 'units' ? 'packages' : d)),
    );
    // the image's own masks are in no package: the layer masks them (image.units-masked checks them)
    expect(layer.yaml).toContain(`scripts/layer-debs.sh ${IMAGE_MASKED_UNITS.map((u) => `--mask ${u} `).join('')}${plan.units.join(' ')}`);
    expect(layer.files.has('chroot-includes.tar')).toBe(false);
    expect(layer.files.get('scripts/layer-debs.sh')?.content).toBe(LAYER_DEBS_SH);
    expect(layer.files.get('debs/Packages')?.content.toString()).toBe('Package: leakless\n');
    expect(layer.files.get('leakless-image.tar')).toEqual(top.files.get('leakless-image.tar'));
  });

  it('refuses a recipe without exactly one units step', () => {
    const image = { units: plan.units, masked: [] };
    const once = packagesLayer(top, image, repo);
    expect(() => packagesLayer(once, image, repo)).toThrow(/0 "units" steps/);
  });

  it('fails the build on a whiteout and cleans only what the install created', () => {
    expect(LAYER_DEBS_SH).toContain('find . -type c');
    expect(LAYER_DEBS_SH).toMatch(/apt-get \$apt_opts -y -q --no-install-recommends install leakless\n/);
    // the base's own /var/log directories stay: removing them would be whiteouts
    expect(LAYER_DEBS_SH).not.toContain('rm -rf "$r/var/log"');
    expect(LAYER_DEBS_SH).toContain('find "$r/var/log" -type f -delete');
  });
});
