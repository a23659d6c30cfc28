Feature: Verified loyalty-card links
  A customer links their loyalty card by signing in on the retailer's member site, through
  LINE's account-link flow. Only then do the card's purchases count for them: a member
  number typed in chat links nothing, so nobody can take over someone else's purchases.

  Background:
    Given the three tenin services are running on Kafka, PostgreSQL and Redis

  Scenario: A customer links their card through the member site and its purchases count for them
    Given a marketer has created and activated a campaign "Linked regulars" with a 100% holdout
    When a customer follows the shop's account
    And the customer asks to link their loyalty card
    Then the customer receives a link to the member site
    When the member site signs the customer in as the holder of card "regular" and asks for a nonce
    Then the member site gets a redirect to LINE's account-link dialog
    When the platform reports that the customer completed the account link
    Then the customer is told their card is linked
    When card "regular" is used for 700 yen at store S001
    Then the campaign report counts 700 yen of holdout spend

  Scenario: An attacker typing someone's member number links nothing
    Given a marketer has created and activated a campaign "Card thieves" with a 100% holdout
    When a customer follows the shop's account
    And the customer types the member number of card "victim"
    Then the customer is told to sign in on the member site instead
    When card "victim" is used for 900 yen at store S001
    Then the campaign report counts no holdout spend
