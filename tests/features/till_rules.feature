Feature: The till refuses bad codes and voids give coupons back

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis
    And a marketer has created and activated a campaign "Till rules" with a 0% holdout

  Scenario: Forged and expired codes are refused with their reasons
    When a customer presents a forged code at store S001
    Then the till refuses the code because it is "forged"
    When a customer presents an expired code at store S001
    Then the till refuses the code because it is "expired"

  Scenario: A void gives the coupon back and corrects the report and the statement
    When a customer follows the shop's account
    And the customer asks "coupon please"
    Then the customer receives a coupon message whose QR image decodes to the code
    When the customer pays 1000 yen at store S001 with that coupon
    And the store voids that transaction
    Then the campaign report shows 0 redemptions and 0 yen attributed revenue
    And this month's statement for the campaign adds up to 0 yen
    And the coupon can be used again

  Scenario: A till cannot backdate a sale to redeem a coupon that has expired
    When a customer presents a code that expired 4 days ago at store S001, the sale dated 5 days ago
    Then the till refuses the code because it is "late_report"

  Scenario: A sale dated in the future is refused, naming its time
    When store S001 reports a sale dated 1 hour from now
    Then the till rejects that transaction, naming "transactions.0.occurred_at"

  Scenario: A void dated before its sale is refused, naming its time
    When store S001 records a sale of 600 yen without a coupon
    And the store voids that transaction with a time before the sale
    Then the void is refused, naming "occurred_at"
