// Requests that are safe to repeat (reads, and writes named by their clientMsgId) outlast a
// lost connection: the client package fails a request that got no answer (`connection_lost`,
// `request_timeout`), and these are sent again once a connection is ready; the server answers
// a repeated write as it answered the first. Messages themselves wait in the package's send
// queue instead (ParleyClient.send), which also outlasts a reload.

const UNANSWERED = new Set(['connection_lost', 'request_timeout']);
const BUSY = new Set(['rate_limited', 'unavailable', 'timeout']);

/** Resolves with `ask()`'s answer, asking again after each failure that was no refusal. */
export async function answered(client, ask) {
  for (;;) {
    try {
      return await ask();
    } catch (error) {
      if (UNANSWERED.has(error.code)) await client.whenReady();
      else if (BUSY.has(error.code)) await new Promise((resolve) => setTimeout(resolve, 1000));
      else throw error;
    }
  }
}
