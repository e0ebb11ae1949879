/**
 * Awaits the close of a connection or client whose work is over, done or
 * failed, and drops the close's own error. Safe because everything that mattered
 * was awaited before the close (a result, a commit, a publish), and a session
 * whose socket goes away is ended by the server. The close's error would only
 * replace the one that explains why the work stopped.
 */
export async function closeQuietly(closing: Promise<unknown> | undefined): Promise<void> {
  try {
    await closing;
  } catch {
    // Nothing to do: see above.
  }
}
