"""Structured (JSON) logging for every tenin process, via structlog.

Log lines carry pseudonymous `customer_id`s, never LINE user ids (docs/architecture.md §
Invariants). As a last line of defence, a LINE user id that still reaches a line (say, in
a library's exception text) is masked before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")


def mask_line_user_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every LINE user id in a string value becomes `U…`."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "U" in value:
            event_dict[key] = LINE_USER_ID.sub("U…", value)
    return event_dict


def configure_logging(service: str, level: str = "INFO", json_output: bool = True) -> None:
    """Route stdlib and structlog records through one JSON renderer on stderr."""
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            mask_line_user_ids,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_line_user_ids,
            renderer,
        ],
    )
    # A handler that cannot write (a closed stream) must stay quiet: by default logging then
    # prints the traceback of the exception being handled, message text and all, to stderr.
    logging.raiseExceptions = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python is chatty at INFO about every connection and rebalance.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)
