// Reading the systemd units of a whole tree (every module's, and a built
// rootfs's own): which unit binds what over /etc/resolv.conf, and which
// leakless unit requires one nobody ships. Units are read with the policy
// layer's one unit-file parser, so a reset (`BindReadOnlyPaths=`) counts the
// way systemd counts it.
import { PATHS, parseUnit, unitOfPath, unitWords, type TreeReader, type UnitFile } from '@leakless/policy';

/** Every unit file and drop-in of the tree, parsed, with the unit it configures. */
function unitFiles(tree: TreeReader): { unit: string; path: string; parsed: UnitFile }[] {
  return tree.paths().flatMap((path) => {
    const where = unitOfPath(path);
    return where ? [{ unit: where.unit, path, parsed: parseUnit(tree.read(path) ?? '') }] : [];
  });
}

/** Every assignment of a unit or drop-in that binds a file over /etc/resolv.conf or names the clearnet file, as `Key=value`. */
export function clearnetBinds(tree: TreeReader, file: string): { unit: string; path: string; line: string }[] {
  const out: { unit: string; path: string; line: string }[] = [];
  for (const { unit, path, parsed } of unitFiles(tree))
    for (const keys of parsed.values())
      for (const [key, values] of keys)
        for (const v of values)
          if (
            v.includes(file) ||
            (/^Bind(ReadOnly)?Paths$/.test(key) && v.split(/\s+/).some((b) => b.endsWith(`:${PATHS.resolvConf}`) || b.includes(`:${PATHS.resolvConf}:`)))
          )
            out.push({ unit, path, line: `${key}=${v}` });
  return out;
}

/** Units that a leakless unit in the tree Requires= but that no unit file of the tree provides. */
export function missingRequirements(tree: TreeReader): { unit: string; path: string; requires: string }[] {
  const files = unitFiles(tree);
  const shipped = new Set(files.filter((f) => !unitOfPath(f.path)!.dropIn).map((f) => f.unit));
  return files.flatMap(({ unit, path, parsed }) =>
    unitWords(parsed, 'Unit', 'Requires')
      .filter((r) => r.startsWith('leakless-') && !shipped.has(r))
      .map((requires) => ({ unit, path, requires })),
  );
}
