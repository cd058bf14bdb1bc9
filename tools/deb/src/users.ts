// The accounts leakless-users creates: the image's user plan (the policy's
// users and every module's, merged and checked for one uid each), with the
// home and shell a Debian package expects for an account it also creates
// (tor's postinst refuses a debian-tor whose home is not /var/lib/tor).
import type { Assembly } from '@leakless/policy';
import { planImage, usersTsv } from '@leakless/image';
import type { PackageUser } from './plan.js';

export function usersOf(assembly: Assembly): PackageUser[] {
  return planImage(assembly).users.map((u) => ({ name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell, login: u.role === 'desktop' }));
}

/** The accounts as the image's users.tsv: what leakless-users' preinst hands to the image's account step. */
export function accountsTsv(assembly: Assembly): string {
  return usersTsv(planImage(assembly));
}
