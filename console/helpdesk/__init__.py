"""External helpdesks the console can mirror handoffs to (`base.Helpdesk`), e.g. Chatwoot."""
