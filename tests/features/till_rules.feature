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
