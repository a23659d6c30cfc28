Feature: Campaign drops to every follower
  Like Lawson's coupon drops to its LINE friends, a marketer offers an active campaign to
  everyone who follows the shop at once, instead of waiting for each customer to ask. Each
  follower goes through the same decisions (holdout, budget, policy), and gets at most one
  message from the drop.

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis

  Scenario: A dry run sends nothing, then the drop gives each follower one coupon
    Given a marketer has created and activated a campaign "Winter drop" with a 0% holdout
    When 3 customers follow the shop's account
    And the marketer asks for a dry run of a drop to the campaign's followers
    Then the estimate counts at least those 3 followers and nobody receives anything
    When the marketer drops the campaign to its followers, with no quiet hours
    Then the drop finishes, and each of the 3 followers was pushed exactly one more coupon
    And the drop's report compares the messages sent with a broadcast to everyone
