"""A small MCP server on the official Python SDK (MCPServer), standing in for the MCP servers a
team already runs: the toolbridge host mounts it in ``make demo-mcp``.

    python examples/mcp/weather_server.py        serves MCP on stdin/stdout
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

server = MCPServer("weather", log_level="WARNING")

# Fixed figures: the demo needs no network.
FORECASTS = {"lisbon": (24.5, "sunny"), "oslo": (3.0, "snow"), "lima": (19.0, "overcast")}


class Forecast(BaseModel):
    city: str
    celsius: float
    sky: str


@server.tool()
def forecast(city: str) -> Forecast:
    """Tomorrow's temperature (°C) and sky in a city."""
    celsius, sky = FORECASTS.get(city.lower(), (15.0, "cloudy"))
    return Forecast(city=city, celsius=celsius, sky=sky)


@server.tool()
def cities() -> list[str]:
    """The cities this server knows."""
    return sorted(FORECASTS)


if __name__ == "__main__":
    server.run()
