"""One-time codes that link a channel identity (PSID, SMS sender, web session) to a profile."""
