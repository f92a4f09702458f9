// A chat written with the AI SDK's own useChat, unchanged: it reads the UI Message Stream
// protocol that chatstream.wsgi.ui_message_stream speaks. Bundled by `npm run build`.
import { useChat } from "@ai-sdk/react";
import { useState } from "react";
import { createRoot } from "react-dom/client";

function Part({ part }) {
  if (part.type === "text") return <span className="text">{part.text}</span>;
  if (part.type === "reasoning") return <div className="reasoning">{part.text}</div>;
  if (part.type.startsWith("tool-")) {
    const name = part.type.slice("tool-".length);
    return (
      <div className="tool" data-state={part.state}>
        {name}({JSON.stringify(part.input ?? {})})
        {part.state === "output-available" ? ` → ${JSON.stringify(part.output)}` : ""}
        {part.state === "output-error" ? ` → error: ${part.errorText}` : ""}
      </div>
    );
  }
  return null;
}

function Chat() {
  const { messages, sendMessage, status, stop, error } = useChat();
  const [input, setInput] = useState("");
  return (
    <div id="chat" data-status={status}>
      {messages.map((message) => (
        <div key={message.id} className={`message ${message.role}`} data-role={message.role}>
          {message.parts.map((part, i) => <Part key={i} part={part} />)}
        </div>
      ))}
      {error ? <div id="error">{error.message}</div> : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (input.trim()) sendMessage({ text: input });
          setInput("");
        }}
      >
        <input id="prompt" value={input} onChange={(e) => setInput(e.target.value)} placeholder="Ask…" />
        <button id="send" type="submit" disabled={status !== "ready"}>Send</button>
        <button id="stop" type="button" onClick={() => stop()} disabled={status === "ready"}>Stop</button>
      </form>
    </div>
  );
}

createRoot(document.getElementById("root")).render(<Chat />);
