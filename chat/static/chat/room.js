// Room page: one WebSocket that reconnects by itself (exponential backoff with jitter) and
// resumes where it left off, a heartbeat that notices dead connections, and a log that
// shows messages as plain text, each once and in order, with a marker where some are missing.
(function () {
    "use strict";
    const roomName = JSON.parse(document.getElementById("room-name").textContent);
    const log = document.querySelector("#chat-log");
    const input = document.querySelector("#chat-message-input");
    const submit = document.querySelector("#chat-message-submit");
    const status = document.querySelector("#connection-status");
    const errorBox = document.querySelector("#chat-error");
    const replicaLabel = document.querySelector("#connection-replica");

    const BACKOFF_BASE_MS = 500;
    const BACKOFF_MAX_MS = 15000;
    const HEARTBEAT_EVERY_MS = 25000;
    const HEARTBEAT_TIMEOUT_MS = 10000;
    const CLOSE_INVALID_ROOM = 4400;
    const CLOSE_UNKNOWN_PATH = 4404;
    // Errors that mean "this message was not sent": put the text back so nothing is lost.
    const NOT_SENT = new Set(["rate_limited", "unavailable", "message_too_long"]);

    let socket = null;
    let attempts = 0;
    let pendingText = ""; // the last message sent and not yet seen coming back
    // Where this page is in the room's history: the server numbers messages 1, 2, 3, ...
    // within an epoch; every message up to lastId has been shown.
    let epoch = null;
    let lastId = 0;
    let replayLeft = 0; // history messages still to come after a welcome
    let welcomeLastId = 0; // where the server says this socket stands once the history is in
    let welcomed = false; // whether the current socket joined the room (got its welcome)

    function socketUrl() {
        const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
        const resume = epoch ? `?epoch=${encodeURIComponent(epoch)}&after=${lastId}` : "";
        return `${scheme}//${window.location.host}/ws/chat/${encodeURIComponent(roomName)}/${resume}`;
    }

    function setStatus(state, text) {
        status.dataset.state = state;
        status.textContent = text;
        document.body.dataset.connection = state;
        submit.disabled = state !== "open";
        if (state !== "open") replicaLabel.hidden = true;
    }

    function showError(text) {
        errorBox.textContent = text;
        errorBox.hidden = !text;
    }

    function append(line) {
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.value += line + "\n";
        if (atBottom) log.scrollTop = log.scrollHeight;
    }

    function markGap() {
        // Some messages were lost for good (Redis lost them, or they are older than the
        // history keeps): say so where they would have been, never pretend otherwise.
        append("— some messages may be missing here —");
        document.body.dataset.gaps = String(Number(document.body.dataset.gaps || 0) + 1);
    }

    function replayDone() {
        // The server now counts this socket at the room's last id, even when it sent fewer
        // messages than that (a page shows only the latest on join).
        lastId = Math.max(lastId, welcomeLastId);
        // The history since our last message has arrived. A message we sent that is not in
        // it never reached the server (the socket died first): give it back, never lose it.
        if (pendingText && input.value === "") {
            input.value = pendingText;
            showError("Your last message may not have been sent; it is back in the box.");
        }
        pendingText = "";
    }

    function timeOf(seconds) {
        const when = typeof seconds === "number" ? new Date(seconds * 1000) : new Date();
        return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }

    function connect() {
        setStatus(attempts === 0 ? "connecting" : "reconnecting", attempts === 0 ? "Connecting…" : "Reconnecting…");
        const ws = new WebSocket(socketUrl());
        socket = ws;
        welcomed = false;
        let heartbeat = null;
        let pongDeadline = null;

        function stopHeartbeat() {
            clearInterval(heartbeat);
            clearTimeout(pongDeadline);
        }

        function abandon() {
            // No pong in time: give up on this socket now. A dead network path can take a
            // browser minutes to report as closed.
            stopHeartbeat();
            ws.onopen = ws.onmessage = ws.onclose = null;
            if (socket === ws) {
                socket = null;
                scheduleReconnect();
            }
            ws.close();
        }

        function ping() {
            if (ws.readyState !== WebSocket.OPEN) return;
            ws.send(JSON.stringify({ type: "ping" }));
            clearTimeout(pongDeadline);
            pongDeadline = setTimeout(abandon, HEARTBEAT_TIMEOUT_MS);
        }

        ws.onopen = () => {
            setStatus("open", "Connected");
            showError("");
            ping();
            heartbeat = setInterval(ping, HEARTBEAT_EVERY_MS);
        };
        ws.onmessage = (event) => {
            let frame;
            try {
                frame = JSON.parse(event.data);
            } catch (_) {
                return;
            }
            if (frame.type === "pong") {
                clearTimeout(pongDeadline);
                // Only a pong proves that the server really serves us, so the backoff resets
                // here rather than on open: a server that accepts and then closes at once
                // (its Redis is down) keeps being retried ever more slowly.
                attempts = 0;
                if (frame.replica) {
                    // Which server replica this tab reached (absent when the server hides it).
                    document.body.dataset.replica = frame.replica;
                    replicaLabel.textContent = `via ${frame.replica}`;
                    replicaLabel.hidden = false;
                }
            } else if (frame.type === "error") {
                showError(frame.error);
                // Before its welcome, "unavailable" means the socket could not join, not that
                // the last message was refused: that one is settled by the resume.
                const refused = NOT_SENT.has(frame.code) && (welcomed || frame.code !== "unavailable");
                if (refused && pendingText && input.value === "") {
                    input.value = pendingText;
                    pendingText = "";
                }
            } else if (frame.type === "welcome") {
                if (frame.gap) markGap();
                if (frame.epoch !== epoch) lastId = 0;
                epoch = frame.epoch;
                welcomed = true;
                welcomeLastId = frame.last_id;
                replayLeft = frame.replaying;
                if (replayLeft === 0) replayDone();
            } else if (frame.type === "gap") {
                markGap();
                if (frame.epoch !== epoch) lastId = 0;
                epoch = frame.epoch;
            } else if (typeof frame.message === "string") {
                if (typeof frame.seq === "number") {
                    if (frame.epoch === epoch && frame.seq <= lastId) return; // already shown
                    epoch = frame.epoch;
                    lastId = frame.seq;
                }
                if (frame.message === pendingText) pendingText = "";
                append(`${timeOf(frame.sent_at)}  ${frame.message}`);
                document.body.dataset.lastId = String(lastId);
                if (frame.replayed && --replayLeft === 0) replayDone();
            }
        };
        ws.onclose = (event) => {
            stopHeartbeat();
            if (socket !== ws) return;
            socket = null;
            if (event.code === CLOSE_INVALID_ROOM || event.code === CLOSE_UNKNOWN_PATH) {
                setStatus("closed", "Cannot join this room");
                return;
            }
            scheduleReconnect();
        };
    }

    function scheduleReconnect() {
        attempts += 1;
        // "Equal jitter": half the backoff is fixed, half random, so replicas that restart
        // are not hit by every browser at the same instant.
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempts - 1));
        const delay = ceiling / 2 + Math.random() * (ceiling / 2);
        setStatus("reconnecting", `Connection lost. Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
        setTimeout(connect, delay);
    }

    function send(event) {
        event.preventDefault();
        const text = input.value;
        if (!text.trim()) return;
        if (!socket || socket.readyState !== WebSocket.OPEN) {
            showError("Not connected right now; your message is kept. Send it again once connected.");
            return;
        }
        socket.send(JSON.stringify({ message: text }));
        pendingText = text;
        input.value = "";
        showError("");
        input.focus();
    }

    // A form submit covers both the Send button and Enter in the input.
    document.querySelector("#message-form").addEventListener("submit", send);
    connect();
})();
