/** Placeholder until the offline GraphiQL bundle lands: browsers get a pointer to the API. */
import { Router } from 'express';

export function graphiqlRoutes(): Router {
  return Router();
}
