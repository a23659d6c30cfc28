"""The POS feed: transactions in (HTTP and `pos.transactions`), coupon checks, redemptions, voids."""
