//! The polls app through the test client, on the client's own migrated
//! SQLite database (seeded by the data migration).

#![expect(
    clippy::unwrap_used,
    reason = "test setup: an unexpected error should fail the test loudly"
)]

use kiln::db::prelude::*;
use kiln::test::TestClient;
use showcase::polls::models::{choice, question};

fn client() -> TestClient {
    TestClient::new(showcase::project())
}

/// Logs `client` in as a new user: only logged-in users vote.
async fn log_in(client: &TestClient) {
    let db = client.db().await;
    kiln::auth::create_user(&db, "voter", "", Some("a long passphrase"))
        .await
        .unwrap();
    let response = client
        .post("/accounts/login/")
        .form(&[("username", "voter"), ("password", "a long passphrase")])
        .send()
        .await;
    assert_eq!(response.status(), 302, "{}", response.text());
}

async fn first_question(client: &TestClient) -> (question::Model, Vec<choice::Model>) {
    let db = client.db().await;
    let question = question::Entity::find()
        .order_by_asc(question::Column::Id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let choices = choice::Entity::find()
        .filter(choice::Column::QuestionId.eq(question.id))
        .all(&db)
        .await
        .unwrap();
    (question, choices)
}

#[tokio::test]
async fn the_index_lists_the_seeded_questions_with_links_to_them() {
    let client = client();
    let page = client.get("/polls/").send().await;
    assert_eq!(page.status(), 200);
    let (question, _) = first_question(&client).await;
    let detail = client.reverse("polls:detail", [("id", question.id)]);
    assert!(
        page.text().contains(&format!("href=\"{detail}\"")),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn a_vote_is_counted_and_redirects_to_the_results() {
    let client = client();
    log_in(&client).await;
    let (question, choices) = first_question(&client).await;
    let chosen = &choices[1];
    let response = client
        .post(&client.reverse("polls:vote", [("id", question.id)]))
        .form(&[("choice", chosen.id.to_string())])
        .send()
        .await;
    assert_eq!(response.status(), 303);
    let results = client.reverse("polls:results", [("id", question.id)]);
    assert_eq!(response.header("location"), Some(results.as_str()));
    let stored = choice::Entity::find_by_id(chosen.id)
        .one(&client.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.votes, chosen.votes + 1);
    let page = client.get(&results).send().await.text();
    assert!(
        page.contains(&format!("{} — 1 vote<", chosen.choice_text)),
        "{page}"
    );
}

#[tokio::test]
async fn concurrent_votes_are_all_counted() {
    let client = client();
    log_in(&client).await;
    let (question, choices) = first_question(&client).await;
    let url = client.reverse("polls:vote", [("id", question.id)]);
    let form = [("choice", choices[0].id.to_string())];
    let votes = (0..20).map(|_| client.post(&url).form(&form).send());
    for response in futures_util::future::join_all(votes).await {
        assert_eq!(response.status(), 303);
    }
    let stored = choice::Entity::find_by_id(choices[0].id)
        .one(&client.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.votes, 20);
}

#[tokio::test]
async fn a_vote_without_a_valid_choice_redisplays_the_form_and_counts_nothing() {
    let client = client();
    log_in(&client).await;
    let (question, _) = first_question(&client).await;
    let (other, other_choices) = {
        let db = client.db().await;
        let other = question::Entity::find()
            .filter(question::Column::Id.ne(question.id))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        let choices = choice::Entity::find()
            .filter(choice::Column::QuestionId.eq(other.id))
            .all(&db)
            .await
            .unwrap();
        (other, choices)
    };
    let url = client.reverse("polls:vote", [("id", question.id)]);
    for (form, error) in [
        (vec![], "This field is required."),
        (vec![("choice", "abc".to_owned())], "Enter a whole number."),
        // A choice of another question must not be counted here.
        (
            vec![("choice", other_choices[0].id.to_string())],
            "Select a valid choice. That choice is not one of the available choices.",
        ),
    ] {
        let response = client.post(&url).form(&form).send().await;
        assert_eq!(response.status(), 422, "{form:?}");
        let page = response.text();
        assert!(page.contains("You didn&#x27;t select a choice."), "{page}");
        assert!(
            page.contains(&format!(
                "<fieldset aria-invalid=\"true\" aria-describedby=\"id_choice_error\"><ul class=\"errorlist\" id=\"id_choice_error\"><li>{error}</li></ul>"
            )),
            "{page}"
        );
        assert!(
            page.contains("name=\"choice\""),
            "the choices are shown again: {page}"
        );
    }
    let total: i32 = choice::Entity::find()
        .all(&client.db().await)
        .await
        .unwrap()
        .iter()
        .map(|c| c.votes)
        .sum();
    assert_eq!(
        total, 0,
        "no vote was counted (other question: {})",
        other.id
    );
}

#[tokio::test]
async fn unknown_questions_are_404() {
    let client = client();
    for path in ["/polls/999999/", "/polls/999999/results/"] {
        assert_eq!(client.get(path).send().await.status(), 404, "{path}");
    }
    let response = client
        .post("/polls/999999/vote/")
        .form(&[("choice", "1")])
        .send()
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn question_text_is_escaped() {
    let client = client();
    let db = client.db().await;
    let question = question::ActiveModel {
        question_text: Set("<script>alert(1)</script>".to_owned()),
        pub_date: Set(kiln::db::sea_orm::prelude::ChronoUtc::now()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let page = client
        .get(&client.reverse("polls:detail", [("id", question.id)]))
        .send()
        .await
        .text();
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(
        page.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"),
        "{page}"
    );
    assert!(
        page.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; · Kiln polls</title>"),
        "{page}"
    );
    let index = client.get("/polls/").send().await.text();
    assert!(!index.contains("<script>alert(1)"), "{index}");
    assert!(
        index.contains("&lt;script&gt;alert(1)&lt;/script&gt;</a>"),
        "{index}"
    );
}

#[tokio::test]
async fn each_client_has_its_own_database() {
    let first = client();
    let (question, choices) = first_question(&first).await;
    let url = first.reverse("polls:vote", [("id", question.id)]);
    let form = [("choice", choices[0].id.to_string())];
    assert_eq!(first.post(&url).form(&form).send().await.status(), 303);
    let second = client();
    let (_, fresh) = first_question(&second).await;
    assert_eq!(fresh[0].votes, 0);
}

#[tokio::test]
async fn the_index_is_paginated_five_per_page() {
    let client = client();
    let db = client.db().await;
    for n in 0..10 {
        question::ActiveModel {
            question_text: Set(format!("Extra question {n}?")),
            pub_date: Set(kiln::db::sea_orm::prelude::ChronoUtc::now()),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    // 12 questions: pages 1, 2 and 3, the newest first.
    let first = client.get("/polls/").send().await.text();
    assert!(
        first.contains("Extra question 9?") && !first.contains("Extra question 4?"),
        "{first}"
    );
    assert!(
        first.contains("<strong aria-current=\"page\">1</strong>"),
        "{first}"
    );
    assert!(first.contains("href=\"?page=3\""), "{first}");
    let last = client.get("/polls/?page=last").send().await.text();
    assert!(last.contains("What&#x27;s new?"), "{last}");
    for bad in ["/polls/?page=4", "/polls/?page=0", "/polls/?page=two"] {
        assert_eq!(client.get(bad).send().await.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn pages_are_templates_extending_the_project_base() {
    let client = client();
    let (question, choices) = first_question(&client).await;
    let detail = client
        .get(&client.reverse("polls:detail", [("id", question.id)]))
        .send()
        .await;
    assert_eq!(
        detail.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = detail.text();
    // From templates/base.html (the project's), filled by polls/detail.html.
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(
        page.contains("<link rel=\"stylesheet\" href=\"/static/polls/style.css\">"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<title>{} · Kiln polls</title>",
            question.question_text.replace('\'', "&#x27;")
        )),
        "{page}"
    );
    let action = client.reverse("polls:vote", [("id", question.id)]);
    assert!(
        page.contains(&format!("<form action=\"{action}\" method=\"post\">")),
        "{page}"
    );
    for choice in &choices {
        assert!(
            page.contains(&format!(
                "<input type=\"radio\" name=\"choice\" value=\"{}\"> {}</label>",
                choice.id, choice.choice_text
            )),
            "{page}"
        );
    }
    let published = question.pub_date.format("%Y").to_string();
    assert!(page.contains("<small>Published "), "{page}");
    assert!(page.contains(&published), "{page}");
    let results = client
        .get(&client.reverse("polls:results", [("id", question.id)]))
        .send()
        .await
        .text();
    assert!(results.contains("— 0 votes</li>"), "{results}");
    assert!(
        results.contains(&format!(
            "<a href=\"{}\">Vote again?</a>",
            client.reverse("polls:detail", [("id", question.id)])
        )),
        "{results}"
    );
}

#[tokio::test]
async fn a_suggested_question_is_saved_by_a_model_form() {
    let client = client();
    let url = client.reverse("polls:suggest", ());
    let page = client.get(&url).send().await.text();
    assert!(
        page.contains("<label for=\"id_question_text\">Question:</label>"),
        "{page}"
    );
    assert!(
        page.contains("What to ask, in 200 characters or fewer."),
        "{page}"
    );
    assert!(page.contains("maxlength=\"200\""), "{page}");
    assert!(!page.contains("pub_date"), "{page}");

    let long = "?".repeat(201);
    let response = client
        .post(&url)
        .form(&[("question_text", long.as_str())])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .contains("Ensure this value has at most 200 characters (it has 201).")
    );

    let response = client
        .post(&url)
        .form(&[("question_text", "Tabs or spaces?")])
        .follow_redirects()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.text().contains("<h1>Tabs or spaces?</h1>"),
        "{}",
        response.text()
    );
    let stored = question::Entity::find()
        .filter(question::Column::QuestionText.eq("Tabs or spaces?"))
        .count(&client.db().await)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn an_anonymous_vote_goes_to_the_login_page_and_counts_nothing() {
    let client = client();
    let (question, choices) = first_question(&client).await;
    let response = client
        .post(&client.reverse("polls:vote", [("id", question.id)]))
        .form(&[("choice", choices[0].id.to_string())])
        .send()
        .await;
    assert_eq!(response.status(), 303);
    let detail = client.reverse("polls:detail", [("id", question.id)]);
    assert_eq!(
        response.header("location"),
        Some(format!("/accounts/login/?next={detail}").as_str())
    );
    let stored = choice::Entity::find_by_id(choices[0].id)
        .one(&client.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.votes, choices[0].votes);
    // Logged in, the navigation says so.
    log_in(&client).await;
    let page = client.get("/polls/").send().await.text();
    assert!(page.contains("Logged in as voter"), "{page}");
}

#[tokio::test]
async fn the_vote_counts_page_is_for_staff_with_the_permission_only() {
    let client = client();
    let anonymous = client.get("/polls/votes/").send().await;
    assert_eq!(anonymous.status(), 302);
    assert_eq!(
        anonymous.header("location"),
        Some("/accounts/login/?next=%2Fpolls%2Fvotes%2F")
    );
    log_in(&client).await;
    assert_eq!(client.get("/polls/votes/").send().await.status(), 403);
    let db = client.db().await;
    kiln::auth::create_superuser(&db, "boss", "", Some("a long passphrase"))
        .await
        .unwrap();
    client
        .post("/accounts/login/")
        .form(&[("username", "boss"), ("password", "a long passphrase")])
        .send()
        .await;
    let page = client.get("/polls/votes/").send().await;
    assert_eq!(page.status(), 200);
    let text = page.text();
    assert!(
        text.contains("<h1>Vote counts</h1>") && text.contains("Logged in as boss"),
        "{text}"
    );
}

#[tokio::test]
async fn a_visitor_signs_up_from_the_navigation_and_then_votes() {
    let client = client();
    let (question, choices) = first_question(&client).await;
    let detail = client.reverse("polls:detail", [("id", question.id)]);
    let page = client.get(&detail).send().await.text();
    let signup = format!("/accounts/signup/?next={detail}");
    assert!(page.contains(&format!("href=\"{signup}\"")), "{page}");
    assert!(client.get(&signup).send().await.text().contains("Sign up"));
    let response = client
        .post(&signup)
        .form(&[
            ("username", "newcomer"),
            ("email", "newcomer@example.com"),
            ("password1", "a long passphrase"),
            ("password2", "a long passphrase"),
        ])
        .send()
        .await;
    assert_eq!(response.status(), 302, "{}", response.text());
    assert_eq!(response.header("location"), Some(detail.as_str()));
    assert!(
        client
            .get(&detail)
            .send()
            .await
            .text()
            .contains("Logged in as newcomer")
    );
    let vote = client
        .post(&client.reverse("polls:vote", [("id", question.id)]))
        .form(&[("choice", choices[0].id.to_string())])
        .send()
        .await;
    assert_eq!(vote.status(), 303);
    let stored = choice::Entity::find_by_id(choices[0].id)
        .one(&client.db().await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.votes, choices[0].votes + 1);
}
