"""One rule for secret-looking environment variables, shared by Bash and the notebook view."""

from __future__ import annotations

from alloy_nb.redact import is_secret_name, redact_env_values
from alloy_nb.tools.core.bash import scrub_env


def test_secret_names() -> None:
    for name in ("ANTHROPIC_API_KEY", "github_token", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                 "GOOGLE_APPLICATION_CREDENTIALS"):
        assert is_secret_name(name), name
    for name in ("PATH", "HOME", "LANG", "PYTHONPATH"):
        assert not is_secret_name(name), name


def test_values_are_redacted_and_short_ones_left_alone() -> None:
    env = {"OPENAI_API_KEY": "sk-proj-0123456789abcdef", "PIN_TOKEN": "1234", "HOME": "/root/x/y/z"}
    text = "key=sk-proj-0123456789abcdef pin=1234 home=/root/x/y/z"
    assert redact_env_values(text, env) == "key=[redacted] pin=1234 home=/root/x/y/z"


def test_bash_drops_exactly_the_secret_names() -> None:
    env = {"OPENAI_API_KEY": "x", "MY_TOKEN": "y", "PATH": "/bin", "HOME": "/root"}
    assert scrub_env(env) == {"PATH": "/bin", "HOME": "/root"}
