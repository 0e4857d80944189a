/** The gid for `socketGroup`: a number as is, a name looked up in /etc/group (Node has no getgrnam). */
import { readFileSync } from 'node:fs';
import { ferryError } from '@ferry/sdk/internal';

export function resolveGroup(group: string | number, groupFile = '/etc/group'): number {
  if (typeof group === 'number') return group;
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {}
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw ferryError('ERR_INVALID_ARG_VALUE', `socketGroup: no group named '${group}' in ${groupFile}`);
}
