"""The servers binreplay talks to: connecting, what a server says about itself and its tables."""
