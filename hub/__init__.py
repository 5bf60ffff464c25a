"""crm-hub: calls, e-mails and Telegram chats on one client card."""

__version__ = "0.1.0"
