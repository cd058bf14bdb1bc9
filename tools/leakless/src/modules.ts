// The modules the image is assembled from, in emit order.
import type { LeaklessModule } from '@leakless/policy';
import * as sysctl from '@leakless/sysctl';

export const allModules: readonly LeaklessModule[] = [sysctl];
