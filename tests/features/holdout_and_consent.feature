Feature: Holdout customers and consent
  Lift is measured against customers deliberately given nothing, and a customer who
  opts out hears no offers until they opt back in.

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis

  Scenario: A customer in the holdout group gets a kind message and no coupon
    Given a marketer has created and activated a campaign "Everyone is holdout" with a 100% holdout
    When a customer with a linked loyalty card follows the shop's account
    And the customer asks "any coupons today?"
    Then the customer receives a kind message without a coupon
    When the customer spends 700 yen at store S001 without a coupon
    Then the campaign report counts 700 yen of holdout spend

  Scenario: An opted-out customer gets no offers, and opting back in works
    Given a marketer has created and activated a campaign "Consent check" with a 0% holdout
    When a customer follows the shop's account
    And the customer says "配信停止"
    And the customer asks "クーポンください"
    Then the customer receives no coupon
    When the customer says "配信再開"
    And the customer asks "クーポンください"
    Then the customer receives a coupon message whose QR image decodes to the code
