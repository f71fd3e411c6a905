// Room picker: check the name the way the server does, then go to /chat/<name>/.
(function () {
    "use strict";
    const input = document.querySelector("#room-name-input");
    const error = document.querySelector("#room-name-error");
    const maxLength = Number(input.dataset.maxLength);

    function problemWith(name) {
        if (!name) return "Type a room name: it cannot be empty or only spaces.";
        const length = [...name].length; // code points, as the server counts them
        if (length > maxLength) return `That room name is ${length} characters long; the limit is ${maxLength}. Choose a shorter name.`;
        if (name === "." || name === "..") return "'.' and '..' cannot be room names; add another character.";
        if (/[\p{Cc}\p{Cs}\p{Co}]/u.test(name)) return "The room name contains an invisible or control character; remove it and try again.";
        if (/^[\p{Cf}\p{Z}]+$/u.test(name)) return "The room name is made only of invisible characters; type something visible.";
        return null;
    }

    function enter(event) {
        event.preventDefault();
        const name = input.value.normalize("NFC").trim();
        const problem = problemWith(name);
        if (problem) {
            error.textContent = problem;
            error.hidden = false;
            input.focus();
            return;
        }
        window.location.pathname = "/chat/" + encodeURIComponent(name) + "/";
    }

    // A form submit covers both the button and Enter in the input.
    document.querySelector("#room-form").addEventListener("submit", enter);
    input.addEventListener("input", () => { error.hidden = true; });
})();
