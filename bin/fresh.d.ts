// Types of bin/fresh.js (plain JavaScript, run by node before any build exists) for the TypeScript that imports it.
export const BUILD_INPUTS: string[];
export function contentHash(root: string, path: string): string;
export function isFresh(root: string, more?: string[]): boolean;
