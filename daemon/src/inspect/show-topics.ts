/** What `ferry show` can show (a module of its own: the CLI loads it without the daemon). */
export const SHOW_TOPICS = [
  'sessions',
  'apps',
  'segments',
  'listeners',
  'stats',
  'rules',
  'namespaces',
  'top',
  'topics',
] as const;
export type ShowTopic = (typeof SHOW_TOPICS)[number];
