/** The mcore version, written into checkpoints, bundles and reports. Kept equal to package.json's. */
export const VERSION = '0.1.0';
