Feature: Budgets hold and crashes change no numbers

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis

  Scenario: When the budget runs out the clerk says so in character
    Given a marketer has created and activated a campaign "Tiny budget" with a 0% holdout and a budget of 2 coupons
    When 4 customers follow the shop's account and ask for deals
    Then exactly 2 coupons are issued
    And the other customers hear that today's coupons are gone

  Scenario: Killing a worker mid-stream changes none of the final numbers
    Given a marketer has created and activated a campaign "Crash test" with a 0% holdout
    When 6 customers follow the shop's account and ask for deals
    And the redemption tracker's worker is killed and restarted while they shop with their coupons
    Then every customer's coupon is redeemed exactly once in the campaign report
