// Debian version syntax (deb-version(5)): [epoch:]upstream[-revision].
// The packages take the policy's release.version, so a version dpkg would
// refuse is bad input, reported before anything is built.

/** Why `v` is not a Debian version, or undefined when it is. */
export function debianVersionProblem(v: string): string | undefined {
  if (v.endsWith('-')) return 'the revision after the last "-" is empty';
  const m = /^(?:(\d+):)?(.+?)(?:-([^-]+))?$/s.exec(v);
  if (!m) return 'is empty';
  const [, , upstream = '', revision] = m;
  if (!/^[0-9]/.test(upstream)) return `upstream version "${upstream}" must start with a digit`;
  if (!/^[A-Za-z0-9.+~-]+$/.test(upstream)) return `upstream version "${upstream}" may contain only letters, digits and . + ~ - (deb-version(5))`;
  if (revision !== undefined && !/^[A-Za-z0-9.+~]+$/.test(revision)) return `revision "${revision}" may contain only letters, digits and . + ~`;
  return undefined;
}

/** A version in a file name: the epoch is not part of it (NAME_VERSION_ARCH.deb). */
export function fileVersion(v: string): string {
  return v.replace(/^\d+:/, '');
}
