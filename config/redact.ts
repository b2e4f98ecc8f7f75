/**
 * A service URL without its password, for messages and logs (`mysql://user@host:port/db`).
 * Service URLs come from the configuration and may carry credentials; nothing prints them whole.
 */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
