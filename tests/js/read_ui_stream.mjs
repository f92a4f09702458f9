// Reads one answer of a UI Message Stream endpoint with the ai package's own client code
// (DefaultChatTransport, then readUIMessageStream) and prints the final UI message as JSON.
// Usage: node read_ui_stream.mjs EXAMPLE_DIR URL PROMPT
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [exampleDir, url, prompt] = process.argv.slice(2);
const require = createRequire(`${exampleDir}/package.json`);
const { DefaultChatTransport, readUIMessageStream } = await import(
  pathToFileURL(require.resolve("ai")).href
);

const transport = new DefaultChatTransport({ api: url });
const stream = await transport.sendMessages({
  chatId: "chat-1",
  trigger: "submit-message",
  messageId: undefined,
  abortSignal: undefined,
  messages: [{ id: "user-1", role: "user", parts: [{ type: "text", text: prompt }] }],
});
let last = null;
for await (const message of readUIMessageStream({
  stream,
  onError: (error) => { throw error; },
  terminateOnError: true,
})) {
  last = message;
}
process.stdout.write(JSON.stringify(last));
