// The modules the image is assembled from, in emit order.
import type { LeaklessModule } from '@leakless/policy';
import * as sysctl from '@leakless/sysctl';
import * as firewall from '@leakless/firewall';
import * as netns from '@leakless/netns';
import * as htpdate from '@leakless/htpdate';
import * as torConfig from '@leakless/tor-config';
import * as resolver from '@leakless/resolver';

export const allModules: readonly LeaklessModule[] = [sysctl, firewall, netns, htpdate, torConfig, resolver];
