"""Entry point for `python -m azure_openai_connector.emulator`."""

from .cli import main

raise SystemExit(main())
