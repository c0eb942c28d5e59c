"""The playground: a local page to fill in the connector's forms and run its actions as workflow steps.

    azure-openai-connector playground [--port N]

`Playground` is the server (a context manager) and `serve` runs it until interrupted (server.py);
`PlaygroundApp` is the page's logic without HTTP (app.py); handler.py routes and guards requests. The page's
JavaScript is vendored in `static/` (the forms bundle is built by frontend/build.sh), so a plain
`pip install` is enough: no Node at run time.
"""

from .app import PlaygroundApp
from .server import Playground, serve

__all__ = ["Playground", "PlaygroundApp", "serve"]
