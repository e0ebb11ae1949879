// Preloaded into a diffrelay child process (node --import) to run it on a host whose clock stepped back:
// Date.now() reads DIFFRELAY_TEST_CLOCK_BEHIND_MS milliseconds behind the machine's clock.
const behindMs = Number(process.env.DIFFRELAY_TEST_CLOCK_BEHIND_MS ?? 0);
const machineNow = Date.now;
Date.now = () => machineNow() - behindMs;
