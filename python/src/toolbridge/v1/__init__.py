"""Generated protocol code (scripts/gen.sh); do not edit."""
