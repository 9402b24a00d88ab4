"""addtolib: a Slack chat-ops bot that adds video assets to Uplynk libraries."""

__version__ = "0.1.0"
