from services.tracker.intake.process import main

if __name__ == "__main__":
    main()
