Feature: Budgets hold and crashes change no numbers

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis

  Scenario: When the budget runs out the clerk says so in character
    Given a marketer has created and activated a campaign "Tiny budget" with a 0% holdout and a budget of 2 coupons
    When 4 customers follow the shop's account and ask for deals
    Then exactly 2 coupons are issued
    And the other customers hear that today's coupons are gone

  Scenario: Killing workers mid-stream changes none of the final numbers
    Given a marketer has created and activated a campaign "Crash test" with a 0% holdout
    When 6 customers follow the shop's account and ask for deals while the campaign engine's worker is killed and restarted
    Then every customer has a coupon, and every coupon issued was delivered exactly once
    When they all pay with their coupons while the redemption tracker's worker is killed and restarted
    Then the campaign report counts each of those coupons issued once and redeemed once
