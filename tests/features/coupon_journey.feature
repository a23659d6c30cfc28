Feature: The clerk hands out a coupon that is redeemed at the till and paid for
  The retailer runs a campaign; tenin's clerk gives a customer a coupon in chat, the
  customer uses it at a store, and the report shows what the clerk earned.

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis
    And a marketer has created and activated a campaign "Onigiri morning" with a 0% holdout

  Scenario: A coupon goes from chat to till to the report
    When a customer follows the shop's account
    And the customer asks "クーポンある？"
    Then the customer receives a coupon message whose QR image decodes to the code
    When the customer pays 1280 yen at store S001 with that coupon
    Then the till accepts the coupon
    And the customer is thanked for using the coupon
    And the campaign report shows 1 redemption, 1280 yen attributed revenue and the revenue share owed

  Scenario: Redeliveries, re-sends and two tills do not count twice
    When a customer follows the shop's account
    And the customer asks for deals in a webhook that LINE delivers 3 times
    Then that request gives the customer exactly 1 coupon
    When the customer pays 900 yen at store S001 with that coupon
    And the store re-sends the same transaction
    Then the re-sent transaction is reported as a duplicate
    And the campaign report shows 1 redemption
    When the same code is presented at two tills at once
    Then neither till redeems it again
