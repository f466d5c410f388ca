"""The run's output formats written from its TestRecords: JUnit XML, KTAP, Allure results."""
