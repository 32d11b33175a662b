/**
 * A zip entry's name: always `/` between folders (the zip format's separator), whatever the platform's
 * path separator is; a name built with path.join on Windows would hold backslashes the Linux host cannot use.
 */
export function zipEntryName(folder: string, name: string): string {
  return [...folder.split(/[\\/]+/).filter(Boolean), name].join("/");
}
