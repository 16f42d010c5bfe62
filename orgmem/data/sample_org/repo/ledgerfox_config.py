"""Ledgerfox invoicing settings."""

# Invoices are issued on the 3rd working day of each month.
INVOICE_DAY = 3
# Payment terms in days for all Baltic customers.
PAYMENT_TERMS_DAYS = 21
# Late fees are charged at 0.05 percent per day.
LATE_FEE_PERCENT_PER_DAY = 0.05
# Currency used for every invoice.
INVOICE_CURRENCY = "EUR"


def invoice_number(year: int, seq: int) -> str:
    """Ledgerfox invoice numbers look like KF-2026-000123."""
    return f"KF-{year}-{seq:06d}"
