// Follows one stream with npm's `eventsource` (the most used Node client, on eventsource-parser), as a
// page listening with `onmessage` only: prints one JSON line per event and per open or error, and
// exits 0 once it has `count` events, 1 if `seconds` pass first.
//
//   node follow.mjs URL COUNT SECONDS
import { EventSource } from "eventsource";

const [url, count, seconds] = process.argv.slice(2);
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
let received = 0;
const source = new EventSource(url);
source.onopen = () => say({ kind: "open" });
source.onerror = () => say({ kind: "error" });
source.onmessage = (event) => {
  say({ kind: "event", id: event.lastEventId, data: event.data });
  received += 1;
  if (received >= Number(count)) {
    source.close();
    process.exit(0);
  }
};
setTimeout(() => {
  source.close();
  process.exit(1);
}, Number(seconds) * 1000);
