Feature: A marketer runs a campaign from the console
  The retailer's marketer plans a campaign on the console's web pages, checks the forecast,
  launches it, watches a customer's coupon get redeemed without reloading the page, and
  asks why that customer got that coupon. The pages run in a real browser against the
  running services.

  Background:
    Given the tenin services and the console are running
    And the marketer has signed in to the console with a marketer key

  Scenario: Plan, launch and watch a campaign earn
    Given 5 customers follow the shop's account
    When the marketer creates a campaign "Onigiri week" that ends before it starts
    Then the console shows the mistake next to the "Ends at" field and saves nothing
    When the marketer moves the end to a week after the start and saves the draft
    And the marketer runs the forecast for the draft
    Then the forecast shows the expected coupons, redemptions and incremental revenue with their intervals
    And the forecast's audience counts at least the 5 customers who follow the shop
    When the marketer activates the campaign after confirming
    Then the campaign's page says it is active and shows its live report
    When a customer follows the shop's account
    And the customer asks "クーポンある？"
    Then the customer receives a coupon message whose QR image decodes to the code
    When the customer pays 1200 yen at store S001 with that coupon
    Then the till accepts the coupon
    And the campaign's page shows 1 redemption and ¥1,200 attributed revenue without being reloaded
    When the marketer looks up the customer's coupon code under "Explain a decision"
    Then the console says in plain words that the customer got the offer with the highest expected value
    When the marketer signs out
    Then the console asks the marketer to sign in again before showing the campaign

  Scenario: Drop a campaign to the shop's followers and watch it go out
    Given a marketer has created and activated a campaign "Bento drop" with a 0% holdout
    And 3 customers follow the shop's account
    When the marketer starts a drop of that campaign from its page, sending even in quiet hours
    Then the drop's progress on the campaign's page reaches all the followers without being reloaded
    And each of the 3 customers receives one more coupon message
