"""The playground: a local page to fill in the connector's forms and run its actions as workflow steps.

    azure-openai-connector playground [--port N]

`Playground` is the server (a context manager); `serve` runs it until interrupted. The page's
JavaScript is vendored in `static/` (the forms bundle is built by frontend/build.sh), so a plain
`pip install` is enough: no Node at run time.
"""

from .server import Playground, scrub, serve

__all__ = ["Playground", "scrub", "serve"]
